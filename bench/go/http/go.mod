module weftbench/http

go 1.19
