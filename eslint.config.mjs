// ESLint for the whole workspace: typescript-eslint's recommended rules, sorted imports and
// @effect/eslint-plugin's import rule. Formatting is prettier's job (`pnpm lint` runs both), so
// the plugin's dprint formatter rule stays off.
import effect from "@effect/eslint-plugin"
import js from "@eslint/js"
import simpleImportSort from "eslint-plugin-simple-import-sort"
import globals from "globals"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/node_modules/**",
      "**/dist/**",
      "test/fixtures/**",
      "artifacts/**",
      ".kyozo/**",
      "**/.tsbuild/**",
      "**/*.d.ts"
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node }
    },
    plugins: {
      "@effect": effect,
      "simple-import-sort": simpleImportSort
    },
    rules: {
      "simple-import-sort/imports": "error",
      "simple-import-sort/exports": "error",
      // The barrels of these packages load every module they hold (platform-node's pulls in all
      // Node implementations); the "effect" barrel is the documented style and stays allowed.
      "@effect/no-import-from-barrel-package": [
        "error",
        {
          packageNames: [
            "@effect/cli",
            "@effect/cluster",
            "@effect/experimental",
            "@effect/platform",
            "@effect/platform-node",
            "@effect/rpc",
            "@effect/sql",
            "@effect/sql-pg",
            "@effect/workflow"
          ]
        }
      ],
      // Data.TaggedError("X")<{}> is Effect's way to declare an error without fields.
      "@typescript-eslint/no-empty-object-type": ["error", { allowObjectTypes: "always" }],
      // A `let` read by a closure declared before its one assignment cannot be a `const`.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // The control characters matched are meant (terminal escapes, a NUL placeholder).
      "no-control-regex": "off",
      // An underscore marks a binding kept on purpose (a destructured rest, a required parameter).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" }
      ]
    }
  },
  {
    // Tests and benchmarks read JSON answers loosely; their assertions are the check.
    files: ["test/**", "bench/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" }
  },
  {
    files: ["packages/dashboard/src/**"],
    languageOptions: { globals: { ...globals.browser } }
  }
)
