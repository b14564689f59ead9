# Shell functions shared by scripts/demo.sh and scripts/test.sh (sourced).

# Is any dependency of package.json missing from node_modules? (`npm start`
# and `npm test` run on a fresh clone, before any `npm install`.)
npm_deps_missing() {
  node -e '
    const pkg = require(process.cwd() + "/package.json");
    const fs = require("fs");
    const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
    process.exit(names.some((n) => !fs.existsSync(`node_modules/${n}/package.json`)) ? 0 : 1);
  '
}

# Installs the npm dependencies when some are missing. --ignore-scripts: the
# caller builds next, once, with every library present.
ensure_npm_deps() {
  if npm_deps_missing; then
    echo "installing the npm dependencies (npm ci)"
    npm ci --ignore-scripts --no-audit --no-fund "$@"
  fi
}
