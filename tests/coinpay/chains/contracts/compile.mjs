// Compiles TestToken.sol with npm solc (wasm, offline) into TestToken.json: {abi, bytecode}.
// Run from the repository root: node tests/coinpay/chains/contracts/compile.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "../../../../.cache/npm/package.json"));
const solc = require("solc");

const input = {
  language: "Solidity",
  sources: { "TestToken.sol": { content: readFileSync(join(here, "TestToken.sol"), "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
for (const error of output.errors ?? []) {
  console.error(error.formattedMessage);
  if (error.severity === "error") process.exit(1);
}
const contract = output.contracts["TestToken.sol"].TestToken;
const artefact = {
  compiler: `solc ${solc.version()}`,
  abi: contract.abi,
  bytecode: `0x${contract.evm.bytecode.object}`,
};
writeFileSync(join(here, "TestToken.json"), `${JSON.stringify(artefact, null, 2)}\n`);
console.log(`wrote TestToken.json (${contract.evm.bytecode.object.length / 2} bytes)`);
