// Stands in, inside the runner's bundle, for dockerode dependencies the runner never uses:
// ssh2 (DOCKER_HOST=ssh://) and gRPC/protobuf (BuildKit sessions; images use the classic builder).
// dockerode loads them at start, and together they are 1.8 MB of code to parse on every command.
module.exports = {};
