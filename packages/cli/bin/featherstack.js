#!/usr/bin/env node
// Committed launcher: package managers link bins at install time, before dist/ is built.
import '../dist/bin.js';
