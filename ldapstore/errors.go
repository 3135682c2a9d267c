package ldapstore

import (
	"errors"
	"fmt"
)

// ResultCode is an LDAP result code (RFC 4511 §4.1.9, Appendix A).
type ResultCode uint16

// The result codes the store and the server use.
const (
	Success                      ResultCode = 0
	OperationsError              ResultCode = 1
	ProtocolError                ResultCode = 2
	TimeLimitExceeded            ResultCode = 3
	SizeLimitExceeded            ResultCode = 4
	CompareFalse                 ResultCode = 5
	CompareTrue                  ResultCode = 6
	AuthMethodNotSupported       ResultCode = 7
	StrongerAuthRequired         ResultCode = 8
	AdminLimitExceeded           ResultCode = 11
	UnavailableCriticalExtension ResultCode = 12
	ConfidentialityRequired      ResultCode = 13
	NoSuchAttribute              ResultCode = 16
	UndefinedAttributeType       ResultCode = 17
	InappropriateMatching        ResultCode = 18
	ConstraintViolation          ResultCode = 19
	AttributeOrValueExists       ResultCode = 20
	InvalidAttributeSyntax       ResultCode = 21
	NoSuchObject                 ResultCode = 32
	InvalidDNSyntax              ResultCode = 34
	InappropriateAuthentication  ResultCode = 48
	InvalidCredentials           ResultCode = 49
	InsufficientAccessRights     ResultCode = 50
	Busy                         ResultCode = 51
	Unavailable                  ResultCode = 52
	UnwillingToPerform           ResultCode = 53
	NamingViolation              ResultCode = 64
	ObjectClassViolation         ResultCode = 65
	NotAllowedOnNonLeaf          ResultCode = 66
	NotAllowedOnRDN              ResultCode = 67
	EntryAlreadyExists           ResultCode = 68
	ObjectClassModsProhibited    ResultCode = 69
	AffectsMultipleDSAs          ResultCode = 71
	Other                        ResultCode = 80
	Canceled                     ResultCode = 118
	NoSuchOperation              ResultCode = 119
	TooLate                      ResultCode = 120
	CannotCancel                 ResultCode = 121
)

// Error is an LDAP error: a result code, a diagnostic message safe to send to
// the peer, and the matched DN for noSuchObject.
type Error struct {
	Code      ResultCode
	Message   string
	MatchedDN string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ldap result %d: %s", e.Code, e.Message)
}

// Errorf returns an *Error with code and a formatted diagnostic message.
func Errorf(code ResultCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the result code carried by err: Success for nil, the code of
// an *Error (also when wrapped), Other for anything else.
func CodeOf(err error) ResultCode {
	if err == nil {
		return Success
	}
	var le *Error
	if errors.As(err, &le) {
		return le.Code
	}
	return Other
}
