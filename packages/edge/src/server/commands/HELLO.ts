// HELLO [protover [AUTH user pass] [SETNAME name]].
import { logIn, refuse } from "./AUTH.js";
import type { Handler } from "./handler.js";

/** HELLO [protover [AUTH user pass] [SETNAME name]]: switch protocol first, then answer. */
export const hello: Handler = (_d, args, w, c, s) => {
  let proto = c.proto;
  let i = 1;
  if (args.length > 1) {
    const v = args[1]!;
    if (v !== "2" && v !== "3") return w.error("NOPROTO unsupported protocol version");
    proto = v === "3" ? 3 : 2;
    i = 2;
  }
  let setname: string | undefined;
  for (; i < args.length; i++) {
    const opt = args[i]!.toUpperCase();
    if (opt === "AUTH" && i + 2 < args.length) {
      const err = logIn(s, c, args[i + 1], args[i + 2]!);
      if (err) return refuse(c, err, (l) => w.error(l));
      i += 2;
    } else if (opt === "SETNAME" && i + 1 < args.length) {
      setname = args[++i]!;
    } else {
      return w.error(`ERR Syntax error in HELLO option '${args[i]}'`);
    }
  }
  if (!c.authed) {
    return w.error(
      "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
    );
  }
  if (setname !== undefined) c.name = setname;
  // Switch first, then answer: the reply itself is in the new protocol.
  c.proto = proto;
  w.protocol = proto;
  w.mapHeader(7);
  w.bulkString("server");
  w.bulkString("dispenser");
  w.bulkString("version");
  w.bulkString(s.version);
  w.bulkString("proto");
  w.integer(proto);
  w.bulkString("id");
  w.integer(c.id);
  w.bulkString("mode");
  w.bulkString("standalone");
  w.bulkString("role");
  w.bulkString("master");
  w.bulkString("modules");
  w.arrayHeader(0);
};
