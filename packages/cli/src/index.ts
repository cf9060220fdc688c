// The dispenser command.
export {};
