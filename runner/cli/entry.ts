import { main } from './main.ts';

// Exit explicitly once output is flushed: idle engine sockets must not keep the CLI alive.
const code = await main(process.argv.slice(2));
process.stdout.write('', () => process.exit(code));
