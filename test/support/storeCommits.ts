// What a directory store holds, read from its files: tests wait for the commits they need by reading them
// (a commit's name says which generation wrote it and up to which seq it holds every write).
import * as fs from "node:fs";

export interface StoredCommit {
  name: string;
  generation: number;
  seq: number;
}

/** The commits in a directory store's folder for one PE (g<generation>-s<seq>.commit), oldest first. */
export function storedCommits(storeDir: string): StoredCommit[] {
  if (!fs.existsSync(storeDir)) return [];
  const found: StoredCommit[] = [];
  for (const name of fs.readdirSync(storeDir)) {
    const match = /^g(\d{10})-s(\d{16})\.commit$/.exec(name);
    if (match) found.push({ name, generation: Number(match[1]), seq: Number(match[2]) });
  }
  return found.sort((a, b) => a.seq - b.seq);
}
