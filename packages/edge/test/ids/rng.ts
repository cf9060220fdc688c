// The seeded PRNG of the ledger's property tests: a failing seed replays exactly.
export { Rng } from "../../../ledger/test/state/rng.js";
