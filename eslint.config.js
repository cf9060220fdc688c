// Lint rules for the whole workspace. Type-aware, so promise and import mistakes are errors.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
  {
    // The Raft core and the ledger state machine are pure: no I/O, clock or global randomness.
    files: ["packages/raft/src/**/*.ts", "packages/ledger/src/state/**/*.ts"],
    ignores: ["packages/raft/src/**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: ["node:*", "fs", "net", "level", "classic-level", "@grpc/*", "ioredis"] },
      ],
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
