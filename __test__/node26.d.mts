export declare function node26(): string | null
