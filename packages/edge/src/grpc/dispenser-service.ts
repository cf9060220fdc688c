// The edge's gRPC Dispenser service: a thin layer over Dispenser. Every error is a status code with
// an ErrorDetail trailer; bad input is refused before anything is drawn, so it changes nothing.
import type { DispenserServer, Id, IssueBatchResponse, SequenceDefinition } from "@dispenser/proto";
import { changesFromPb, specFromPb, toPbSequence } from "@dispenser/domain";
import { ErrorReason, MAX_ISSUE_BATCH, statusError } from "@dispenser/proto";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { EdgeErrorCode } from "../errors.js";
import { EdgeError, wireInput } from "../errors.js";
import type { Role, Users } from "../auth/users.js";
import { allows } from "../auth/users.js";
import { headerOf, remoteOf } from "@dispenser/plumbing";
import type { LoginThrottle } from "../auth/login-throttle.js";
import type { Dispenser } from "../issuing/dispenser.js";
import type { ServedSequence } from "../issuing/dispenser.js";
import type { Drawn } from "../issuing/sequence-issuer.js";
import type { SequenceInfo } from "../ledger/ledger-port.js";
import type { EdgeMetrics } from "../metrics.js";
import { checkSequenceName, parseIdText } from "../issuing/names.js";

const CODES: Record<EdgeErrorCode, [status, ErrorReason]> = {
  "invalid-argument": [status.INVALID_ARGUMENT, ErrorReason.ERROR_REASON_INVALID_ARGUMENT],
  "not-found": [status.NOT_FOUND, ErrorReason.ERROR_REASON_NOT_FOUND],
  "already-exists": [status.ALREADY_EXISTS, ErrorReason.ERROR_REASON_ALREADY_EXISTS],
  exhausted: [status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED],
  overloaded: [status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_OVERLOADED],
  unavailable: [status.UNAVAILABLE, ErrorReason.ERROR_REASON_NO_LEADER],
  deadline: [status.DEADLINE_EXCEEDED, ErrorReason.ERROR_REASON_UNSPECIFIED],
  "failed-precondition": [status.FAILED_PRECONDITION, ErrorReason.ERROR_REASON_UNSPECIFIED],
  aborted: [status.ABORTED, ErrorReason.ERROR_REASON_REVISION_MISMATCH],
  unauthenticated: [status.UNAUTHENTICATED, ErrorReason.ERROR_REASON_UNSPECIFIED],
  "permission-denied": [status.PERMISSION_DENIED, ErrorReason.ERROR_REASON_UNSPECIFIED],
  internal: [status.INTERNAL, ErrorReason.ERROR_REASON_UNSPECIFIED],
};

export function grpcErrorOf(e: unknown): ReturnType<typeof statusError> {
  const err =
    e instanceof EdgeError ? e : new EdgeError("internal", e instanceof Error ? e.message : String(e));
  const [code, reason] = CODES[err.code];
  return statusError(code, err.message, { reason, field: err.field });
}

/** A definition as the admin calls answer it. */
const pbOf = (i: SequenceInfo): SequenceDefinition => toPbSequence(i.def, i);

const BEARER = "Bearer ";

/** A refusal answered late: a wrong token, or one not checked while its user's window is open. */
class LateRefusal extends EdgeError {
  constructor(
    code: EdgeErrorCode,
    message: string,
    /** When to answer, in ms from now. */
    readonly afterMs: number,
  ) {
    super(code, message);
  }
}

/**
 * The user a call's `authorization: Bearer <name>:<secret>` names, when `users` are configured;
 * throws when it names none, or one whose role or caps do not allow the call. With a throttle,
 * a token is not even checked while its user's window from this address is open (see
 * LoginThrottle), and a wrong one opens the next window.
 */
function authorize(
  users: Users,
  throttle: LoginThrottle | undefined,
  call: object,
  api: string,
  role: Role,
  ids: number,
): void {
  const header = headerOf(call, "authorization");
  if (header === undefined)
    throw new EdgeError("unauthenticated", `${api} needs a token: authorization: Bearer <user>:<secret>`);
  const token = header.startsWith(BEARER) ? header.slice(BEARER.length) : "";
  const name = token.slice(0, Math.max(0, token.indexOf(":")));
  const closed = throttle?.closedFor(remoteOf(call), name);
  if (closed !== undefined)
    throw new LateRefusal(
      "overloaded",
      `too many wrong tokens for user ${JSON.stringify(name)} from this address: not checked, retry later`,
      closed,
    );
  const user = users.checkToken(token);
  if (!user)
    throw new LateRefusal(
      "unauthenticated",
      "the token is not a user's name:secret of this edge",
      throttle?.failed(remoteOf(call), name) ?? 0,
    );
  if (!allows(user, role))
    throw new EdgeError("permission-denied", `${api} is for role ${role}; user ${user.name} is ${user.role}`);
  const refused = ids > 0 ? users.admit(user, ids) : undefined;
  if (refused)
    throw new EdgeError(refused.over === "rate" ? "overloaded" : "permission-denied", refused.message);
}

/** The role each call needs, and how many ids it asks for (counted against the user's caps). */
const ACCESS: Readonly<Record<string, { role: Role; ids?: (req: never) => number }>> = {
  Issue: { role: "issue", ids: () => 1 },
  IssueBatch: { role: "issue", ids: (r: { count: number }) => r.count },
  Lease: { role: "issue", ids: (r: { count: bigint }) => Number(r.count) },
  Parse: { role: "issue" },
  Info: { role: "issue" },
  CreateSequence: { role: "admin" },
  DescribeSequence: { role: "issue" },
  ListSequences: { role: "issue" },
  DeleteSequence: { role: "admin" },
  UpdateSequence: { role: "admin" },
};

/**
 * `users`: who may call what (auth/users.ts); undefined: anyone may call anything (the dev mode).
 * `throttle` slows down guessing tokens, per client address and user.
 */
export function createDispenserService(
  d: Dispenser,
  metrics?: EdgeMetrics,
  users?: Users,
  throttle?: LoginThrottle,
): DispenserServer {
  // The Issue hot path creates no closure per call: the handlers and their helpers are made once.
  const unary = <Req, Res>(api: string, f: (req: Req) => Res | Promise<Res>) => {
    const access = ACCESS[api];
    if (!access) throw new Error(`${api}: no access rule`);
    const count = access.ids as ((req: Req) => number) | undefined;
    const fail = (callback: sendUnaryData<Res>, e: unknown): void => {
      metrics?.rejected.inc({ api, code: e instanceof EdgeError ? e.code : "internal" });
      callback(grpcErrorOf(e), null);
    };
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      try {
        if (d.draining) throw new EdgeError("unavailable", "the edge is shutting down");
        if (users) authorize(users, throttle, call, api, access.role, count ? count(call.request) : 0);
        const r = f(call.request);
        if (r instanceof Promise)
          r.then(
            (v) => callback(null, v),
            (e: unknown) => fail(callback, e),
          );
        else callback(null, r);
      } catch (e) {
        if (e instanceof LateRefusal && e.afterMs > 0) {
          const t = setTimeout(() => fail(callback, e), e.afterMs);
          call.once("cancelled", () => clearTimeout(t));
        } else fail(callback, e);
      }
    };
  };

  // The last name that passed checkSequenceName (a pure check): clients repeat one name.
  let checked = "";
  const checkName = (name: string): void => {
    if (name === checked) return;
    checkSequenceName(name);
    checked = name;
  };
  const issueOne = (i: ServedSequence): Id | Promise<Id> => {
    const id = i.issueOne();
    return typeof id === "bigint"
      ? { value: id, str: i.map.text(id) }
      : id.then((v) => ({ value: v, str: i.map.text(v) }));
  };

  return {
    issue: unary("Issue", (req) => {
      checkName(req.sequence);
      const s = d.sequence(req.sequence);
      return s instanceof Promise ? s.then(issueOne) : issueOne(s);
    }),

    issueBatch: unary("IssueBatch", (req) => {
      checkName(req.sequence);
      const count = req.count;
      // A loaded sequence with the ids at hand answers without a promise.
      const s =
        Number.isInteger(count) && count >= 1 && count <= MAX_ISSUE_BATCH
          ? d.sequence(req.sequence)
          : undefined;
      if (s !== undefined && !(s instanceof Promise)) {
        const r = s.draw(count);
        return r instanceof Promise
          ? r.then((x) => batchResponse(x, s.map.stride))
          : batchResponse(r, s.map.stride);
      }
      return d.drawBatch(req.sequence, count).then(({ drawn, map }) => batchResponse(drawn, map.stride));
    }),

    lease: unary("Lease", async (req) => {
      checkSequenceName(req.sequence);
      const r = await d.lease(req.sequence, req.count);
      return {
        range: r.range,
        dc: r.dc,
        fence: r.grant.fence,
        sequenceRevision: r.grant.revision,
        clusterIdentity: r.grant.clusterIdentity,
      };
    }),

    parse: unary("Parse", async (req) => {
      checkSequenceName(req.sequence);
      const s = await d.sequence(req.sequence);
      if (!req.id) throw new EdgeError("invalid-argument", "id is required", "id");
      const id = req.id.$case === "value" ? req.id.value : parseIdText(req.id.value);
      const r = s.map.parse(id);
      return { dc: r.dc, counter: r.counter };
    }),

    info: unary("Info", async (req) => {
      checkSequenceName(req.sequence);
      const s = await d.sequence(req.sequence);
      const info = await d.describeSequence(req.sequence);
      const total = s.generated + s.wasted;
      return {
        sequence: pbOf(info),
        dc: d.dc,
        ...(s.last !== undefined ? { current: { value: s.last, str: s.map.text(s.last) } } : {}),
        generated: s.generated,
        wasted: s.wasted,
        wasteRate: total === 0n ? 0 : Number(s.wasted) / Number(total),
        durable: true,
        runway: s.runway,
      };
    }),

    createSequence: unary("CreateSequence", async (req) => {
      const seq = req.sequence;
      if (!seq) throw new EdgeError("invalid-argument", "sequence is required", "sequence");
      return { sequence: pbOf(await d.createSequence(wireInput(() => specFromPb(seq)))) };
    }),
    describeSequence: unary("DescribeSequence", async (req) => ({
      sequence: pbOf(await d.describeSequence(req.name)),
    })),
    listSequences: unary("ListSequences", async (req) => {
      const page = await d.listSequences(req);
      return {
        sequences: page.sequences.map(pbOf),
        nextPageToken: page.nextPageToken,
        revision: page.revision,
      };
    }),
    deleteSequence: unary("DeleteSequence", async (req) => ({
      revision: await d.deleteSequence(req.name, req.expectedRevision),
    })),
    updateSequence: unary("UpdateSequence", async (req) => {
      const changes = wireInput(() => changesFromPb(req));
      return { sequence: pbOf(await d.updateSequence(req.name, changes, req.expectedRevision)) };
    }),
  };
}

/** A compact range when the ids form one progression, else the list. */
export function batchResponse(drawn: Drawn, stride: bigint | undefined): IssueBatchResponse {
  if (!Array.isArray(drawn)) {
    return {
      ids: { $case: "range", value: { start: drawn.first, count: BigInt(drawn.count), step: drawn.step } },
    };
  }
  const ids = drawn;
  if (stride !== undefined && isProgression(ids, stride))
    return { ids: { $case: "range", value: { start: ids[0]!, count: BigInt(ids.length), step: stride } } };
  return { ids: { $case: "list", value: { values: [...ids] } } };
}

function isProgression(ids: readonly bigint[], stride: bigint): boolean {
  const n = ids.length;
  if (stride === 1n && n > 1) {
    // Strictly increasing integers whose ends are n - 1 apart are consecutive. Comparisons, unlike
    // subtractions, allocate no bigint: this runs over up to 10,000 ids.
    for (let i = 1; i < n; i++) if (!(ids[i]! > ids[i - 1]!)) return false;
    return ids[n - 1]! - ids[0]! === BigInt(n - 1);
  }
  for (let i = 1; i < n; i++) if (ids[i]! - ids[i - 1]! !== stride) return false;
  return true;
}
