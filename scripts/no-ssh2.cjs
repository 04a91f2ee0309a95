// dockerode's SSH transport (DOCKER_HOST=ssh://) is not supported: this stands in for ssh2 in the bundle.
module.exports = {};
