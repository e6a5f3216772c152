import { createTroupe, defineExpert } from './dist/index.js';
const troupe = createTroupe({ threads: 1, experts: [defineExpert({ name: 'w', skills: { s: 3 }, module: new URL('./test/fixtures/behave.mjs', import.meta.url).href })] });
for (const plan of [
  { analyze: () => [], integrate: () => ({ then() {} }) },
  { analyze: () => [], validate: () => ({ then() {} }) },
  { analyze: () => [], integrate: async () => ({ then() {} }) },
]) {
  const out = await troupe.run(plan, null, { deadlineMs: 200 });
  console.log(out.status, out.stage, out.error?.code, out.error?.message);
}
await troupe.close();
