// Command broken does not compile, so that a test sees Compile report the
// compiler's message.
package main

func main() {
	undefinedOnPurpose()
}
