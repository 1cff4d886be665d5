// A few CommonsenseQA-style questions in the official JSONL format, written for the tests (not dataset rows).

export const question = (id: string, stem: string, texts: string[], key: string): string =>
  JSON.stringify({ answerKey: key, id, question: { question_concept: 'x', stem, choices: texts.map((text, i) => ({ label: 'ABCDE'[i], text })) } });

/** Six questions, one per line (no trailing newline). */
export const QUESTIONS = [
  question('q1', 'Where is milk kept?', ['fridge', 'oven', 'sink', 'roof', 'car'], 'A'),
  question('q2', 'What do birds use to fly?', ['fins', 'wings', 'wheels', 'roots', 'hooves'], 'B'),
  question('q3', 'What opens a door?', ['song', 'cloud', 'key', 'spoon', 'hat'], 'C'),
  question('q4', 'Where do fish live?', ['desert', 'attic', 'oven', 'pond', 'library'], 'D'),
  question('q5', 'What do you wear on feet?', ['shoes', 'belts', 'gloves', 'scarves', 'hats'], 'A'),
  question('q6', 'What keeps rain off?', ['sponge', 'fan', 'umbrella', 'net', 'sieve'], 'C'),
].join('\n');
