"""The gateway policies as sans-I/O cores: each decides from plain values (a method, a path,
header values, parsed bodies, the shared state) and never touches a socket, so the CLI's sync
transport layers (gateway/transports/) and the server's async path (server/) drive the same
code. docs/gateway.md describes the split."""
