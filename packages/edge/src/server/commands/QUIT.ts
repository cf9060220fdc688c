// QUIT: answer OK, then close.
import type { Handler } from "./handler.js";

export const quit: Handler = (_d, _args, w, c) => {
  c.quit = true;
  w.simpleString("OK");
};
