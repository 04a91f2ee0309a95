// The README's library example, runnable as written after `npm test` or `npm run demo` has set the
// machine up: `node examples/library.mjs`. It runs one sandbox with one secret_input connection
// delivered as an env var, prints the events, and exits with the agent's code.
import { Runner } from 'grexal-runner';

const manifest = {
  connections: [
    { id: 'openai', mode: 'secret_input', fields: [{ key: 'api_key' }], env: { OPENAI_API_KEY: 'api_key' } },
  ],
};
const credentials = { openai: { fields: { api_key: 'sk-example-not-a-real-key' } } };

const runner = await Runner.start(); // finds Docker; removes what dead runners left behind
try {
  const sandbox = await runner.create({
    image: 'grexal/agent',
    command: ['sh', '-c', 'echo "key: $OPENAI_API_KEY"'],
    manifest,
    credentials,
  });
  // state, log (masked), connect, takeover.*, exit
  sandbox.onEvent((event) => console.log(JSON.stringify(event)));
  await sandbox.start();
  const { exitCode } = await sandbox.exited; // the container and its directory are gone by now
  process.exitCode = exitCode;
} finally {
  await runner.close(); // destroys whatever still runs
}
