// The legacy builder reads <core-path>/package.json; @jupyterlab/core-meta ships that file as
// core.package.json. Copy it where the builder looks, so the build needs no Python JupyterLab.
const fs = require('fs');
const path = require('path');

const source = require.resolve('@jupyterlab/core-meta/core.package.json');
const target = path.join(__dirname, '..', 'node_modules', '.core-meta');
fs.mkdirSync(target, { recursive: true });
fs.copyFileSync(source, path.join(target, 'package.json'));
