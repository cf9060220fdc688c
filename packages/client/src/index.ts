// The client SDK.
export {};
