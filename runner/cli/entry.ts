import { formatTimings, mark, timings, timingsEnabled } from '../timings.ts';
import { main } from './main.ts';

mark('cli entry');

// Exit explicitly once output is flushed: idle engine sockets must not keep the CLI alive.
const code = await main(process.argv.slice(2));
mark('cli done');
if (timingsEnabled()) process.stderr.write(`${formatTimings(timings())}\n`);
process.stdout.write('', () => process.exit(code));
