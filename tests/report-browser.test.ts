/// <reference lib="dom" />
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bin } from './cli.js';

// Debian's chromium package (`npm test` installs it when missing); another build can be named.
const CHROMIUM = process.env.FEATHERSTACK_CHROMIUM ?? '/usr/bin/chromium';

describe('the run report in headless Chromium', () => {
  it('shows every chart and the augmented samples, loading nothing from outside the file', async () => {
    expect(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium package or set FEATHERSTACK_CHROMIUM`).toBe(true);
    const out = await mkdtemp(join(tmpdir(), 'fs-report-run-'));
    const run = spawnSync(process.execPath, [bin, 'run', '--json', '--out', out, '--base-epochs', '2', '--head-epochs', '3'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.report.html).toBe(join(out, 'report.html'));

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(result.report.html).href, { waitUntil: 'load' });

      // Every chart is there, decoded by the browser at the size of its PNG file.
      const images = await page.$$eval('img', (els) =>
        (els as HTMLImageElement[]).map((i) => ({
          id: i.id,
          complete: i.complete,
          width: i.naturalWidth,
          height: i.naturalHeight,
          shown: i.getBoundingClientRect().width,
        })),
      );
      const expected = ['base-loss', 'base-accuracy', 'head-loss', 'head-accuracy', 'throughput', 'confusion', 'per-class', 'samples'];
      expect(images.map((i) => i.id).sort()).toEqual(expected.map((n) => `chart-${n}`).sort());
      for (const image of images) {
        const name = image.id.slice('chart-'.length);
        const meta = await sharp(readFileSync(result.report.charts[name])).metadata();
        expect(image, name).toMatchObject({ complete: true, width: meta.width, height: meta.height });
        expect(image.shown, name).toBeGreaterThan(100);
      }
      // The samples grid as rendered has texture (not a blank or broken image): a screenshot of it varies.
      const shot = await page.locator('#chart-samples').screenshot();
      const stats = await sharp(shot).stats();
      expect(stats.channels[0]!.stdev).toBeGreaterThan(20);
      // The tables hold the run's numbers.
      const summary = await page.locator('#summary').textContent();
      expect(summary).toContain(result.val_accuracy.toFixed(4));
      const perClassRows = await page.locator('#evaluation tbody tr').count();
      expect(perClassRows).toBe(10);
      const baseRows = await page.locator('#training table').first().locator('tbody tr').count();
      expect(baseRows).toBe(2);
      // Self-contained: the page itself is the only request; no errors.
      expect(requests.filter((u) => !u.startsWith('data:'))).toEqual([pathToFileURL(result.report.html).href]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
