// An independent client of Sluice's failover JSON-RPC endpoint: ethers v6
// reads the chain, a balance and a revert, then signs a transfer locally and
// sends it through the endpoint, waiting for its receipt. It exits non-zero
// on any failure.
//
// Environment:
//   SLUICE_RPC_URL    the endpoint, e.g. http://127.0.0.1:8080/rpc/sandbox
//   SLUICE_RPC_TOKEN  optional bearer token
//   SLUICE_KEY        hex private key of a funded account
//   SLUICE_CHAIN_ID   the chain id the endpoint must report
//   SLUICE_SUSD       optional ERC-20 address: a transfer from an empty
//                     account must come back as a revert with data
import { FetchRequest, Interface, JsonRpcProvider, Wallet } from "ethers";

function env(name, required = true) {
  const v = process.env[name];
  if (required && !v) throw new Error(`${name} is not set`);
  return v;
}

function check(ok, msg) {
  if (!ok) throw new Error(msg);
}

async function main() {
  const req = new FetchRequest(env("SLUICE_RPC_URL"));
  const token = env("SLUICE_RPC_TOKEN", false);
  if (token) req.setHeader("Authorization", `Bearer ${token}`);
  const chainId = BigInt(env("SLUICE_CHAIN_ID"));
  const provider = new JsonRpcProvider(req, chainId, { staticNetwork: true });
  provider.pollingInterval = 200;

  const net = await provider.send("eth_chainId", []);
  check(BigInt(net) === chainId, `eth_chainId: got ${net}, want ${chainId}`);
  const wallet = new Wallet(env("SLUICE_KEY"), provider);
  const balance = await provider.getBalance(wallet.address);
  check(balance > 0n, `balance of ${wallet.address} is 0`);

  const susd = env("SLUICE_SUSD", false);
  if (susd) await expectRevert(provider, susd);

  const to = Wallet.createRandom().address;
  const tx = await wallet.sendTransaction({ to, value: 1n });
  const receipt = await tx.wait(1, 30000);
  check(receipt && receipt.status === 1, `transfer ${tx.hash} failed: ${JSON.stringify(receipt)}`);
  const got = await provider.getBalance(to);
  check(got === 1n, `recipient balance: got ${got}, want 1`);
  console.log(JSON.stringify({ balance: balance.toString(), tx: tx.hash, block: receipt.blockNumber }));
}

// expectRevert calls an ERC-20 transfer from an account without tokens: the
// endpoint must pass the node's revert, with its data, to ethers.
async function expectRevert(provider, token) {
  const erc20 = new Interface(["function transfer(address to, uint256 value) returns (bool)"]);
  const from = Wallet.createRandom().address;
  const data = erc20.encodeFunctionData("transfer", [from, 1n]);
  try {
    await provider.call({ from, to: token, data });
  } catch (e) {
    check(e.code === "CALL_EXCEPTION", `revert: got ${e.code}, want CALL_EXCEPTION`);
    check(typeof e.data === "string" && e.data.length >= 10, `revert data missing: ${e.data}`);
    return;
  }
  throw new Error("the transfer from an empty account did not revert");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`ethers client failed: ${e.stack || e}`);
    process.exit(1);
  },
);
