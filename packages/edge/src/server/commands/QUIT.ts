// QUIT: answer OK, then close.
import type { Handler } from "./handler.js";

export const quit: Handler = (_d, _args, r, c) => {
  c.quit = true;
  r.ok();
};
