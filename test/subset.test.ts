/** Subset: a seeded view of another dataset that names the base samples it holds (bench/quality hands them to its peer). */
import { Dataset, Sample, Subset } from '../src/data';

/** Sample i is a 1x1 image whose label is i, so a sample tells where it came from. */
const numbered = (length: number): Dataset => ({
  length,
  get: async (i: number): Promise<Sample> => ({ image: new Uint8Array(3), width: 1, height: 1, label: i }),
});

describe('Subset', () => {
  it('names the base index of each of its samples: sample i is base sample indices[i]', async () => {
    const subset = Subset.random(numbered(50), 20, 3);
    expect(subset.indices.length).toBe(20);
    for (let i = 0; i < subset.length; i++) expect((await subset.get(i)).label).toBe(subset.indices[i]);
  });
});
