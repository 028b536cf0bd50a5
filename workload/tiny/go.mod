module reseat.local/workload/tiny

go 1.22
