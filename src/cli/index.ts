// Entry point of `npm run star`: everything after the script name is ours (a leading "--" is dropped).
// An error that escapes main (a rejection nobody awaited) is reported the same way: one paragraph, exit 1.
import { main, reportError } from './star';

const args = process.argv.slice(2);
const argv = args[0] === '--' ? args.slice(1) : args;
const fail = (e: unknown) => process.exit(reportError(e, argv.includes('--verbose')));
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main(argv).then((code) => process.exit(code));
