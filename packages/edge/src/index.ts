// The edge dispenser's public surface.
export {};
