// The version, set by the bundler from package.json (native/sea.mjs); "0.0.0-dev" when unbundled.
declare const STARTER_INIT_VERSION: string;
export const INIT_VERSION = typeof STARTER_INIT_VERSION === "string" ? STARTER_INIT_VERSION : "0.0.0-dev";
