/**
 * JSON made inside the worker: serialise and parse back a document of `units` × 50 records
 * (nested objects, arrays, strings and numbers).
 */
const documents = new Map<number, unknown>();

function document(units: number): unknown {
  let doc = documents.get(units);
  if (doc === undefined) {
    const records = [];
    for (let i = 0; i < units * 50; i++) {
      records.push({
        id: i,
        name: `record-${i}`,
        tags: ['alpha', 'beta', 'gamma'].slice(0, (i % 3) + 1),
        score: ((i * 7919) % 1000) / 10,
        nested: { active: i % 2 === 0, parent: i > 0 ? i - 1 : null, path: `/a/b/${i}` },
      });
    }
    doc = { version: 1, records };
    documents.set(units, doc);
  }
  return doc;
}

export default function json(units: number): number {
  const text = JSON.stringify(document(units));
  const parsed = JSON.parse(text) as { records: unknown[] };
  return text.length + parsed.records.length;
}
