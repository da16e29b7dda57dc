package main

import (
	"errors"
	"flag"
	"fmt"
)

// errReported marks a failure the command has told already (a batch's
// summary): nothing more is printed, only the exit status is set.
var errReported = errors.New("reported")

// exitError is an error with the exit status it ends the command with;
// any other error ends it with exitFailed.
type exitError struct {
	code int
	err  error
	// hint adds a pointer to -help: the arguments were wrong.
	hint bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a bad flag or argument: exit status 2 with a pointer to
// -help.
func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...), hint: true}
}

// exitCode is the exit status err ends the command with.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailed
}

// inputError is a bad line of a batch's input, named as file:line.
type inputError struct {
	name string
	line int
	err  error
}

func (e *inputError) Error() string { return fmt.Sprintf("%s:%d: %v", e.name, e.line, e.err) }
func (e *inputError) Unwrap() error { return e.err }

// badInput ends the command with exit status 2 for a bad input line.
func badInput(name string, line int, err error) error {
	return &exitError{code: exitUsage, err: &inputError{name: name, line: line, err: err}}
}
