// Applies the free-space transfer function to a spectrum read from a file.
//
//   transfer_spectrum IN OUT BATCH NY NX Z WAVELENGTH DY DX METHOD CARRIER BAND_LIMIT CONJUGATE NTHREADS
//
// IN and OUT are raw little-endian complex128 arrays (BATCH, NY, NX) in C order;
// Z, WAVELENGTH, DY, DX in metres; METHOD asm|fresnel; CARRIER, BAND_LIMIT and
// CONJUGATE 0|1.  Exit status 0 on success, 2 on bad arguments or I/O errors.
#include <complex>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "diffimaging/diffimaging.hpp"

namespace {

std::vector<std::complex<double>> read_spectrum(const std::string& path, std::size_t count) {
  std::vector<std::complex<double>> data(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(data.data()),
          static_cast<std::streamsize>(count * sizeof(std::complex<double>)));
  if (!in || in.peek() != std::char_traits<char>::eof())
    throw std::runtime_error(path + " does not hold exactly BATCH * NY * NX complex128 values");
  return data;
}

bool flag(const char* s) {
  const std::string v(s);
  if (v != "0" && v != "1") throw std::invalid_argument("flags must be 0 or 1, got " + v);
  return v == "1";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 15) {
    std::cerr << "usage: " << argv[0]
              << " IN OUT BATCH NY NX Z WAVELENGTH DY DX METHOD CARRIER BAND_LIMIT CONJUGATE "
                 "NTHREADS\n";
    return 2;
  }
  try {
    namespace di = diffimaging;
    const di::index_t batch = std::stoll(argv[3]), ny = std::stoll(argv[4]), nx = std::stoll(argv[5]);
    di::TransferParams p;
    p.z = std::stod(argv[6]);
    p.wavelength = std::stod(argv[7]);
    p.dy = std::stod(argv[8]);
    p.dx = std::stod(argv[9]);
    p.ny = ny;
    p.nx = nx;
    const std::string method = argv[10];
    if (method != "asm" && method != "fresnel")
      throw std::invalid_argument("METHOD must be asm or fresnel, got " + method);
    p.method = method == "asm" ? di::Method::kAngularSpectrum : di::Method::kFresnel;
    p.carrier = flag(argv[11]);
    p.band_limit = flag(argv[12]);
    const bool conjugate = flag(argv[13]);
    const int nthreads = std::stoi(argv[14]);

    std::vector<std::complex<double>> spectrum =
        read_spectrum(argv[1], static_cast<std::size_t>(batch * ny * nx));
    std::vector<std::complex<double>> result(spectrum.size());
    const di::ConstComplexPlanes<double> src{spectrum.data(), batch, ny, nx};
    const di::ComplexPlanes<double> dst{result.data(), batch, ny, nx};
    di::cpu::transfer_apply<double>(src, dst, p, conjugate, nthreads);

    std::ofstream out(argv[2], std::ios::binary);
    out.write(reinterpret_cast<const char*>(result.data()),
              static_cast<std::streamsize>(result.size() * sizeof(std::complex<double>)));
    if (!out) throw std::runtime_error(std::string("cannot write ") + argv[2]);
    std::cout << "diffimaging " << DIFFIMAGING_VERSION_STRING << ": " << batch << " x " << ny
              << " x " << nx << " spectrum, " << di::cpu::transfer_rows_isa() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "transfer_spectrum: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
