// Parquet fixtures for tests/csqa: a few made-up questions in the schema of the Hub dataset
// tau/commonsense_qa (as the datasets library writes it: choices is a struct of two string lists).
//
//   npm install --no-save hyparquet-writer && node scripts/make_csqa_parquet.mjs
//
// hyparquet-writer is not a project dependency: only this generator needs it, and the committed
// .parquet files are what the tests read. The questions are invented for the tests, not dataset rows.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteBuffer } from 'hyparquet-writer';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'fixtures', 'csqa');
const L = ['A', 'B', 'C', 'D', 'E'];
const row = (id, question, concept, texts, answerKey) => ({ id, question, question_concept: concept, choices: { label: L, text: texts }, answerKey });

const splits = {
  train: [
    row('t1', 'Where do people usually put dirty dishes after a meal?', 'dishes', ['sink', 'bed', 'roof', 'car', 'pocket'], 'A'),
    row('t2', 'What do you need to open a locked door?', 'door', ['spoon', 'key', 'pillow', 'song', 'cloud'], 'B'),
    row('t3', 'Where would a fish most likely live?', 'fish', ['desert', 'attic', 'pond', 'oven', 'library'], 'C'),
    row('t4', 'What might a person feel after winning a prize?', 'winning', ['sad', 'bored', 'hungry', 'happy', 'lost'], 'D'),
    row('t5', 'What does a bird use to fly?', 'bird', ['fins', 'wheels', 'roots', 'hooves', 'wings'], 'E'),
  ],
  validation: [
    row('v1', 'Where would you find many books to borrow?', 'books', ['library', 'beach', 'stable', 'garage', 'cave'], 'A'),
    row('v2', 'What do people wear on their feet?', 'feet', ['hats', 'shoes', 'gloves', 'scarves', 'belts'], 'B'),
  ],
};

const str = (name) => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const list = (name) => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
];
const schema = [
  { name: 'schema', num_children: 5 },
  str('id'),
  str('question'),
  str('question_concept'),
  { name: 'choices', repetition_type: 'OPTIONAL', num_children: 2 },
  ...list('label'),
  ...list('text'),
  str('answerKey'),
];

for (const [split, rows] of Object.entries(splits)) {
  const columnData = ['id', 'question', 'question_concept', 'choices', 'answerKey'].map((name) => ({ name, data: rows.map((r) => r[name]) }));
  const buf = parquetWriteBuffer({ columnData, schema });
  writeFileSync(join(out, `${split}.parquet`), new Uint8Array(buf));
  console.log(`wrote tests/fixtures/csqa/${split}.parquet (${rows.length} rows, ${buf.byteLength} bytes)`);
}
