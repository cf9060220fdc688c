// Lint rules for the whole workspace. Type-aware, so promise and import mistakes are errors.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The house: which workspace packages each package's source may import (subpaths named where only
 * they are allowed). Arrows point down; test/architecture.test.ts holds docs/ARCHITECTURE.md and
 * the packages' dependencies to this table.
 */
export const LAYERS = {
  raft: [],
  proto: [],
  plumbing: [],
  domain: ["proto"],
  ledger: ["raft", "proto", "domain", "plumbing"],
  client: ["proto", "domain"],
  edge: ["proto", "domain", "plumbing", "ledger/client"],
  sim: ["raft", "domain", "ledger/state"],
  cli: ["proto", "domain", "plumbing", "ledger", "client", "edge"],
};

/** Imports that would break the house for the source of `pkg`. */
function layerRule(pkg, extraPatterns = []) {
  const allowed = LAYERS[pkg];
  const paths = [];
  const patterns = [...extraPatterns];
  for (const other of Object.keys(LAYERS)) {
    if (other === pkg) continue;
    const whole = allowed.includes(other);
    if (!whole) paths.push({ name: `@dispenser/${other}`, message: `${pkg} does not import ${other}` });
    if (!whole) {
      patterns.push(`@dispenser/${other}/*`);
      for (const a of allowed) if (a.startsWith(`${other}/`)) patterns.push(`!@dispenser/${a}`);
    }
  }
  return ["error", { paths, patterns }];
}

/** Pure packages: no I/O, clock or global randomness. */
const PURE_IMPORTS = ["node:*", "fs", "net", "level", "classic-level", "@grpc/*", "ioredis"];

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/gen/**", "coverage/**", ".dispenser/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
      eqeqeq: ["error", "always"],
      "no-restricted-syntax": [
        "error",
        { selector: "ExportAllDeclaration", message: "List exports explicitly; no `export *`." },
      ],
    },
  },
  ...Object.keys(LAYERS).map((pkg) => ({
    files: [`packages/${pkg}/src/**/*.ts`],
    rules: { "no-restricted-imports": layerRule(pkg) },
  })),
  {
    files: ["packages/raft/src/**/*.ts"],
    rules: { "no-restricted-imports": layerRule("raft", PURE_IMPORTS) },
  },
  {
    files: ["packages/domain/src/**/*.ts"],
    rules: { "no-restricted-imports": layerRule("domain", PURE_IMPORTS) },
  },
  {
    files: ["packages/ledger/src/state/**/*.ts"],
    rules: { "no-restricted-imports": layerRule("ledger", PURE_IMPORTS) },
  },
  {
    // The Raft core, the domain model and the ledger state machine are pure: no I/O, clock or
    // global randomness.
    files: ["packages/raft/src/**/*.ts", "packages/domain/src/**/*.ts", "packages/ledger/src/state/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "Math", property: "random", message: "Pass a seeded PRNG in." },
        { object: "Date", property: "now", message: "Time is a tick." },
        { object: "performance", property: "now", message: "Time is a tick." },
      ],
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate", "process"],
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
