#include "textflag.h"

// SCAN(X, B, C, T) replaces the 32 words of X by their inclusive prefix sums
// and leaves in every word of C's top quadword the sum of them all. Z2 must
// be 0 and Z13 the VPSHUFB control that copies word 3 of each quadword to
// all four of its words.
//
// Within each quadword it is a Hillis-Steele scan: add X shifted up by one
// word, then by two, with VPSLLQ (a 16 or 32 bit shift moves whole words,
// and VPADDW does not carry from one word into the next). Word 3 of each
// quadword then holds the quadword's total; B has it in all four words. C is
// the Hillis-Steele scan of B over quadwords (VALIGNQ $(8-k), Z2, B, T sets
// T[q] = B[q-k], 0 for q < k), so C - B is, in each word, the sum of all
// earlier quadwords: add it. The shuffle unit does one VPSHUFB and three
// VALIGNQ.
#define SCAN(X, B, C, T) \
	VPSLLQ  $16, X, T; \
	VPADDW  T, X, X; \
	VPSLLQ  $32, X, T; \
	VPADDW  T, X, X; \
	VPSHUFB Z13, X, B; \
	VALIGNQ $7, Z2, B, T; \
	VPADDW  T, B, C; \
	VALIGNQ $6, Z2, C, T; \
	VPADDW  T, C, C; \
	VALIGNQ $4, Z2, C, T; \
	VPADDW  T, C, C; \
	VPSUBW  B, C, T; \
	VPADDW  T, X, X

// VPSHUFB control: in each 128-bit lane, bytes 6,7 (word 3) to every word of
// the low quadword and bytes 14,15 (word 7) to every word of the high one.
DATA rollsumWord3<>+0(SB)/8, $0x0706070607060706
DATA rollsumWord3<>+8(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL rollsumWord3<>(SB), RODATA|NOPTR, $16

// func rollsumScan(in, out *byte, n int, st *rollState, mask uint32) (off int, hits uint32)
//
// Rolls blocks of 32 bytes (n is a positive multiple of 32) in 16-bit lanes,
// one lane per byte, and stops after the first block holding a cut point. See
// rollsum.go for the algebra.
//
// Registers: Z0 = s1 before the block, in every lane; Z1 = s2+1 likewise;
// Z2 = 0; Z3 = 64*31; Z4 = mask; Z5 = 7 in every quadword (VPERMQ index:
// broadcast quadword 7); Z13 = the SCAN control.
TEXT ·rollsumScan(SB), NOSPLIT, $0-52
	MOVQ in+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ st+24(FP), DX
	MOVL 0(DX), AX
	VPBROADCASTW AX, Z0
	MOVL 4(DX), AX
	INCL AX
	VPBROADCASTW AX, Z1
	VPXORQ Z2, Z2, Z2
	MOVL $1984, AX
	VPBROADCASTW AX, Z3
	MOVL mask+32(FP), AX
	VPBROADCASTW AX, Z4
	MOVQ $7, AX
	VPBROADCASTQ AX, Z5
	VBROADCASTI32X4 rollsumWord3<>(SB), Z13
	XORQ BX, BX

loop:
	VPMOVZXBW (SI)(BX*1), Z6
	VPMOVZXBW (DI)(BX*1), Z7
	VPSUBW Z7, Z6, Z6 // d = in - out

	// P = inclusive prefix sum of d: s1 after byte j is s1 + P[j].
	SCAN(Z6, Z14, Z15, Z8)

	// e[j] = s1 after byte j - 64*(out[j]+31): what byte j adds to s2.
	VPSLLW $6, Z7, Z7
	VPADDW Z3, Z7, Z7
	VPADDW Z0, Z6, Z9
	VPSUBW Z7, Z9, Z9

	// Q = inclusive prefix sum of e: s2 after byte j is s2 + Q[j].
	SCAN(Z9, Z16, Z17, Z8)

	// K1[j]: s2 after byte j, plus one, has its mask bits clear, that is
	// s2&mask == mask.
	VPADDW    Z1, Z9, Z10
	VPTESTNMW Z4, Z10, K1

	// The state after the block: add the block totals P[31] and Q[31]. (Not
	// a broadcast of Z10's lane 31: this way the loop-carried chains are one
	// addition each.)
	VPERMQ Z15, Z5, Z11
	VPADDW Z11, Z0, Z0
	VPERMQ Z17, Z5, Z12
	VPADDW Z12, Z1, Z1

	ADDQ     $32, BX
	KORTESTD K1, K1
	JNZ      hit
	CMPQ     BX, CX
	JB       loop

	MOVQ BX, off+40(FP)
	MOVL $0, hits+48(FP)
	JMP  done

hit:
	SUBQ  $32, BX
	MOVQ  BX, off+40(FP)
	KMOVD K1, AX
	MOVL  AX, hits+48(FP)

done:
	// Only the low 16 bits of s1 and s2 are right; rollData makes them exact.
	VMOVD   X0, AX
	MOVWLZX AX, AX
	MOVL    AX, 0(DX)
	VMOVD   X1, AX
	DECL    AX
	MOVWLZX AX, AX
	MOVL    AX, 4(DX)
	VZEROUPPER
	RET
