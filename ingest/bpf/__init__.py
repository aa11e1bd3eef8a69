"""BPF programs: what a compiled object needs from a kernel (objects, with
libbpf's section table in sections and helper and map type ids in abi), and
`kernsurf check` of those needs against stored builds (spec: the KIND:NAME text
form; check: the verdicts, read through ingest.queries; report: the table)."""
