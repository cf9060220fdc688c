// CLUSTER SLOTS | SHARDS | NODES | INFO: one node serving every slot, so cluster clients work.
import type { Handler } from "./handler.js";

export const cluster: Handler = (_d, args, w, _c, s) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "INFO") {
    return w.bulkString(
      "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n",
    );
  }
  if (sub === "SLOTS") {
    w.arrayHeader(1);
    w.arrayHeader(3);
    w.integer(0);
    w.integer(16383);
    w.arrayHeader(2);
    w.bulkString(s.host);
    w.integer(s.port);
    return;
  }
  w.error(`ERR unknown subcommand '${args[1] ?? ""}'. Try CLUSTER HELP.`);
};
