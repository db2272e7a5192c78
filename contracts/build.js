#!/usr/bin/env node
// Compiles every contract in src/ with the pinned solc from node_modules and
// writes one artifact per contract to artifacts/<Name>.json.
//
//   node build.js          write the artifacts
//   node build.js --check  compile and fail (exit 1) if the committed
//                          artifacts differ from what the compiler produces
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

// Changing a setting changes the bytecode: rebuild and commit the artifacts.
const settings = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

const root = __dirname;
const srcDir = path.join(root, 'src');
const outDir = path.join(root, 'artifacts');

function compile() {
  const sources = {};
  for (const file of fs.readdirSync(srcDir).sort()) {
    if (file.endsWith('.sol')) {
      sources[`src/${file}`] = { content: fs.readFileSync(path.join(srcDir, file), 'utf8') };
    }
  }
  const input = { language: 'Solidity', sources, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length > 0) throw new Error(`solc: ${errors.length} error(s)`);

  const artifacts = {};
  for (const [source, contracts] of Object.entries(output.contracts)) {
    for (const [name, c] of Object.entries(contracts)) {
      artifacts[`${name}.json`] = render({
        contractName: name,
        sourceName: source,
        compiler: { name: 'solc', version: solc.version() },
        settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer },
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      });
    }
  }
  return artifacts;
}

function render(artifact) {
  return JSON.stringify(artifact, null, 2) + '\n';
}

function check(artifacts) {
  let stale = 0;
  for (const [file, want] of Object.entries(artifacts)) {
    const p = path.join(outDir, file);
    const got = fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : null;
    if (got !== want) {
      console.error(`artifacts/${file} is ${got === null ? 'missing' : 'stale'}: run "node contracts/build.js" and commit it`);
      stale++;
    }
  }
  for (const file of fs.existsSync(outDir) ? fs.readdirSync(outDir) : []) {
    if (file.endsWith('.json') && !(file in artifacts)) {
      console.error(`artifacts/${file} has no source in src/: remove it`);
      stale++;
    }
  }
  return stale === 0;
}

function main() {
  const artifacts = compile();
  if (process.argv.includes('--check')) {
    if (!check(artifacts)) process.exit(1);
    console.log(`${Object.keys(artifacts).length} artifact(s) up to date (solc ${solc.version()})`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const [file, text] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(outDir, file), text);
    console.log(`wrote artifacts/${file}`);
  }
}

main();
