#!/usr/bin/env node
// Launcher: registers tsx so the TypeScript sources run as they are, then runs the command.
import process from "node:process";
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/main.ts");
await main(process.argv.slice(2));
