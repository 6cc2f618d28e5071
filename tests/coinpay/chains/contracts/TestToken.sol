// SPDX-License-Identifier: MIT
// The smallest ERC-20 the chain tests need: the deployer holds the whole supply and can move it
// with transfer(); every move emits the standard Transfer event. It has no receive() or
// fallback, so plain ETH sent to it reverts (the tests use that for a failed transaction).
//
// Compiled offline with npm solc (wasm), from the repository root:
//   npm install --prefix .cache/npm solc@0.8.37
//   node tests/coinpay/chains/contracts/compile.mjs
// which writes TestToken.json (abi and creation bytecode) beside this file.
pragma solidity 0.8.37;

contract TestToken {
    string public constant name = "Keel Test Dollar";
    string public constant symbol = "KTD";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor() {
        totalSupply = 1_000_000_000 * 10 ** 6;
        balanceOf[msg.sender] = totalSupply;
        emit Transfer(address(0), msg.sender, totalSupply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
