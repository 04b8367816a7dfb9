/** See copy-build-assets.mjs: the assets and the contract shim beside compiled code in `out`. */
export function copyBuildAssets(root: string, out: string): void;
