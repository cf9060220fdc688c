// CONFIG GET <pattern>: answered empty, as clients probe it on connect.
import type { Handler } from "./handler.js";

export const config: Handler = (_d, args, w) => {
  if (args[1]?.toUpperCase() === "GET" && args.length >= 3) return w.mapHeader(0);
  w.error("ERR CONFIG is not supported by this server (only CONFIG GET, which answers nothing)");
};
