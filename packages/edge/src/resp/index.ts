// The Redis protocol codec of the edge: requests in, replies out, no sockets.
export type { ParseEvent, RespLimits } from "./parser.js";
export { DEFAULT_RESP_LIMITS, RespParser } from "./parser.js";
export type { ReplyWriterOptions, RespProtocol } from "./encoder.js";
export { DEFAULT_REPLY_WRITER_OPTIONS, encodeCommand, ReplyWriter, RESP2, RESP3 } from "./encoder.js";
