// The featherstack command as an installed package provides it: found by package name, not by path.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const bin = join(dirname(fileURLToPath(import.meta.resolve('@featherstack/cli/package.json'))), 'bin', 'featherstack.js');
