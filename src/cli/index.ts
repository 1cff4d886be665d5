// Entry point of `npm run star`: everything after the script name is ours (a leading "--" is dropped).
import { main } from './star';

const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then((code) => process.exit(code));
