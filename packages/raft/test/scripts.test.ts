// The Raft core's scenarios kept as text: testdata/*.txt, run on the in-memory cluster of
// harness.ts (each Ready handled as the contract says; one leader per term and one entry per index
// are checked on every Ready). Commands:
//
//   add-nodes N [learners=(ids)] [seed=S]   a new cluster of voters 1..N (and learners)
//   add-node ID                              a new, empty member (before a membership change)
//   campaign ID | tick ID [n=N] | tick-all [n=N] (all nodes, stabilizing after each tick)
//   stabilize [drop=(ids)]                   Readys and deliveries until quiet (messages to `drop` lost)
//   propose ID DATA | conf ID add-learner|add-voter|promote|remove TARGET | transfer ID TO
//   read-index ID REQUEST | read-states ID
//   isolate ID | partition A B | heal | restart ID
//   status [ID] | log ID | state ID
import { join } from "node:path";
import { describe } from "vitest";
import type { ConfChangeType as CCType, NodeId, ProposeResult } from "../src/index.js";
import { ConfChangeType } from "../src/index.js";
import type { Directive } from "./datadriven.js";
import { intArg, intsArg, scripts } from "./datadriven.js";
import { Cluster } from "./harness.js";

interface World {
  c: Cluster | undefined;
}

const CONF: Record<string, CCType> = {
  "add-learner": ConfChangeType.AddLearner,
  "add-voter": ConfChangeType.AddVoter,
  promote: ConfChangeType.PromoteLearner,
  remove: ConfChangeType.Remove,
};

function cluster(w: World): Cluster {
  if (!w.c) throw new Error("no cluster: add-nodes first");
  return w.c;
}

function statusLine(c: Cluster, id: NodeId): string {
  const st = c.node(id).status();
  const cs = st.confState;
  return (
    `${id}: ${st.softState.role} term=${st.hardState.term} lead=${st.softState.lead} ` +
    `commit=${st.hardState.commit} applied=${c.peer(id).appliedIndex} last=${st.lastIndex} ` +
    `voters=(${cs.voters.join(",")})` +
    (cs.learners.length > 0 ? ` learners=(${cs.learners.join(",")})` : "")
  );
}

function statusOf(c: Cluster, ids: readonly NodeId[] = c.ids()): string {
  return ids.map((id) => statusLine(c, id)).join("\n");
}

function proposed(r: ProposeResult): string {
  return r.ok ? `index ${r.index} term ${r.term}` : `refused: ${r.code}`;
}

function run(w: World, d: Directive): string {
  switch (d.cmd) {
    case "add-nodes": {
      const n = intArg(d, 0);
      const voters = Array.from({ length: n }, (_, i) => i + 1);
      w.c = new Cluster(voters, {
        learners: intsArg(d, "learners"),
        seed: d.args.has("seed") ? intArg(d, "seed") : 1,
      });
      return statusOf(w.c);
    }
    case "add-node":
      cluster(w).add(intArg(d, 0));
      return "";
    case "campaign":
      cluster(w).campaign(intArg(d, 0));
      return "";
    case "tick":
      cluster(w).tick(intArg(d, 0), d.args.has("n") ? intArg(d, "n") : 1);
      return "";
    case "tick-all":
      cluster(w).run(d.args.has("n") ? intArg(d, "n") : 1);
      return statusOf(cluster(w));
    case "stabilize": {
      const c = cluster(w);
      const drop = new Set(intsArg(d, "drop"));
      if (drop.size > 0) c.dropIf = (m) => drop.has(m.to);
      try {
        c.stabilize();
      } finally {
        c.dropIf = undefined;
      }
      return statusOf(c);
    }
    case "propose":
      return proposed(cluster(w).propose(intArg(d, 0), d.positionals[1] ?? ""));
    case "conf": {
      const type = CONF[d.positionals[1] ?? ""];
      if (type === undefined) throw new Error(`conf: change must be one of ${Object.keys(CONF).join(", ")}`);
      return proposed(
        cluster(w)
          .node(intArg(d, 0))
          .proposeConfChange({ type, nodeId: intArg(d, 2) }),
      );
    }
    case "transfer":
      cluster(w).node(intArg(d, 0)).transferLeader(intArg(d, 1));
      return "";
    case "read-index":
      return cluster(w).node(intArg(d, 0)).readIndex(intArg(d, 1)) ? "accepted" : "refused";
    case "read-states": {
      const rs = cluster(w).peer(intArg(d, 0)).readStates;
      return rs.length === 0
        ? "none"
        : rs.map((r) => `request ${r.requestId} at index ${r.index}`).join("\n");
    }
    case "isolate":
      cluster(w).isolate(intArg(d, 0));
      return "";
    case "partition":
      cluster(w).partition(intArg(d, 0), intArg(d, 1));
      return "";
    case "heal":
      cluster(w).heal();
      return "";
    case "restart":
      cluster(w).restart(intArg(d, 0));
      return "";
    case "status":
      return statusOf(cluster(w), d.positionals.length > 0 ? [intArg(d, 0)] : undefined);
    case "log": {
      const c = cluster(w);
      const id = intArg(d, 0);
      const first = c.peer(id).storage.firstIndex();
      const terms = c.logTerms(id);
      const shown = terms.map((t, i) => (i + 1 >= first ? `${i + 1}@${t}` : "")).filter(Boolean);
      return shown.length === 0 ? "empty" : shown.join(" ");
    }
    case "state": {
      const s = cluster(w).peer(intArg(d, 0)).state;
      return s.length === 0 ? "empty" : s.join(" ");
    }
    default:
      throw new Error(`unknown command ${d.cmd}`);
  }
}

describe("Raft scenarios (testdata/*.txt)", () => {
  scripts<World>(join(import.meta.dirname, "testdata"), () => ({ c: undefined }), run);
});
