module github.com/skyline-go/skyline

go 1.26.8

require github.com/joho/godotenv v1.5.1

require go.uber.org/goleak v1.3.0 // indirect
