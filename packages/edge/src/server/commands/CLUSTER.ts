// CLUSTER SLOTS | SHARDS | NODES | INFO: one node serving every slot, so cluster clients work.
import type { Handler } from "./handler.js";

export const cluster: Handler = (_d, args, r, _c, s) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "INFO") {
    return r.bulk(
      "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n",
    );
  }
  if (sub === "SLOTS") {
    r.array(1);
    r.array(3);
    r.int(0);
    r.int(16383);
    r.array(2);
    r.bulk(s.host);
    r.int(s.port);
    return;
  }
  r.error(`ERR unknown subcommand '${args[1] ?? ""}'. Try CLUSTER HELP.`);
};
